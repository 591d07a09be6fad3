"""Wires the agent's components together; the one place that knows them all."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import Callable

from loguru import logger

from agent import __version__
from agent.attribution import WriterTracker
from agent.central import CentralPlaces, CentralSet, indexed_by_item
from agent.config import AgentConfig
from agent.discovery import AppFolderDiscovery, FoundFolder, Refused
from agent.fanotify import WriteWatch
from agent.identity import UserTracker, hostname, load_or_make_agent_id
from agent.index import FingerprintIndex
from agent.inotify import make_watchers
from agent.inspector import WorkerFingerprints, make_inspector
from agent.integrity import ConfigWatch
from agent.lastrun import BOOT_ID, CLEAN_STOP, current_boot_id, read_previous_run
from agent.limits import raise_inotify_limits
from agent.media import MediaMonitor, Mount
from agent.netapps import load_app_lists
from agent.notice import Notifier
from agent.paths import readable
from agent.pipeline import MAX_BLIND_REPORTS, Pipeline, blind_fields
from agent.places import EgressPlace, EgressPlaces
from agent.policy import PolicyStore, read_local_sources
from agent.printing import PrintWatcher
from agent.readwatch import ReadWatch
from agent.reporter import Reporter
from agent.selfwatch import Caps, SelfWatch, release_memory
from agent.spool import Spool
from agent.usermounts import USER_FSTYPES, UserMountMonitor
from agent.watcher import FsChange
from rules.errors import InvalidInput
from rules.events import Event


class AgentApp:
    def __init__(
        self,
        config: AgentConfig,
        rules: PolicyStore,
        config_path: str | None = None,
        on_restart: Callable[[str], None] | None = None,
    ):
        """`rules` has been loaded (PolicyStore.load): the agent never runs without rules.

        `config_path`: the config file, watched with the extra rule files (agent/integrity.py).
        `on_restart(why)`: the agent asks its runner to stop it and start it again (far over its
        memory cap); without one it only reports."""
        self.config = config
        self.rules = rules
        os.makedirs(config.state_dir, mode=0o700, exist_ok=True)
        self.agent_id = load_or_make_agent_id(config.state_dir)
        self.host = hostname()
        self.users = UserTracker()
        self.index = FingerprintIndex(config.index_path, config.classified)
        self.spool = Spool(config.spool_path, max_bytes=config.limits.spool_mb * 1024 * 1024)
        self.spool.make_gap = lambda **fields: self.stamped_event("agent.gap", **fields)
        self.notice = Notifier(config.notify_user)  # the employee is told of their own alerts (agent/notice.py)
        self.spool.on_stored = self.notice.offer  # once stored, with the severity the rules in force gave
        # how the last run ended, read (and the mark cleared) before anything can spool: a kill
        # from here on must read as a crash next time
        boot_id = current_boot_id()
        self.previous_run = read_previous_run(self.spool, boot_id, config.state_dir)  # agent/lastrun.py
        self.spool.put([], state={CLEAN_STOP: None, BOOT_ID: boot_id})
        self.places = EgressPlaces()
        self.pipeline = Pipeline(
            self.index,
            self.spool,
            self.places,
            self.make_event,
            self.rules.stamp,
            stable_s=config.stable_s,
            reconcile_s=config.reconcile_s,
            writers=WriterTracker(writes=WriteWatch()),  # who writes on media: the kernel's word where it has one
            make_inspector=lambda: make_inspector(config.inspect_user, config.inspect_timeout_s),
        )
        # the index's fingerprints of classified documents come from the pipeline's worker: parsed
        # without root, and ended with the rest when idle
        self.index.fingerprint = WorkerFingerprints(self.pipeline.inspector)
        # the agent's own inotify reader on Linux, watchdog elsewhere (agent/inotify.py)
        self.watchers = make_watchers(
            self.pipeline.changes, self.pipeline.on_overflow, self.pipeline.on_blind, backend=config.watcher
        )
        self.pipeline.watch_files_with(self.watchers)  # reported files, against writes through hard links
        excluded = tuple(f.path for f in config.classified) + (config.state_dir,)
        user_mounts = config.egress.user_mounts
        skipped = USER_FSTYPES if user_mounts.enabled else ()
        self.media = MediaMonitor(config.egress, self._on_mount, self._on_unmount, excluded=excluded, skipped_fstypes=skipped)
        # phones and shares mounted in user space: walked as their owner (agent/usermounts.py)
        self.user_mounts = (
            UserMountMonitor(user_mounts, self.pipeline.submit_opened, self._on_user_mount, poll_s=config.egress.poll_s)
            if user_mounts.enabled
            else None
        )
        discover = config.egress.discover
        self.app_folders = (  # IM and cloud-drive folders in the homes (agent/discovery.py)
            AppFolderDiscovery(
                discover.app_list(),
                excluded,
                self._on_app_folder,
                self._on_app_folder_gone,
                self._on_app_folder_refused,
                interval_s=discover.interval_s,
                home_roots=discover.home_roots,
                system_users=discover.system_users,
            )
            if discover.enabled
            else None
        )
        self.reporter = Reporter(
            config.server_url,
            config.enroll_secret,
            config.state_dir,
            self.agent_id,
            self.host,
            self.spool,
            heartbeat_s=config.heartbeat_s,
            batch_max=config.batch_max,
            status=self.status_fields,
            policy=self.rules,
            make_event=self.stamped_event,
            ca_bundle=config.ca_bundle,
            timeout_s=config.request_timeout_s,
            retry_max_s=config.retry_max_s,
        )
        self.printing = (  # print jobs through CUPS (agent/printing.py)
            PrintWatcher(
                config.printing.spool_dir,
                self.index,
                self.spool,
                self.stamped_event,
                lambda: make_inspector(config.inspect_user, config.inspect_timeout_s),
                self.index.hasher,
            )
            if config.printing.enabled
            else None
        )
        # which network application reads a classified file (agent/readwatch.py; Linux, fanotify)
        self.reads = ReadWatch(config.classified, load_app_lists(config.network_apps), self._emit)
        self.config_watch = ConfigWatch(self.spool, self.stamped_event, config_path, config.rules)
        self.stop_reason = "clean"
        self._on_restart = on_restart
        caps = Caps(cpu_percent=config.limits.cpu_percent, memory_mb=config.limits.memory_mb)
        self.selfwatch = SelfWatch(caps, self._emit, self._restart)
        self.ready = threading.Event()
        # the register's folders and the group's egress places from the collector (agent/central.py):
        # the cached policy's at start (offline too), a new one's within one heartbeat
        self._central_items: dict = {}
        self._central_live = False
        self.central = CentralPlaces(self._apply_central, self._central_problem, (config.state_dir,), tuple(f.path for f in config.classified))
        self.rules.on_group = self._on_group
        self._on_group(self.rules.current.group)

    def make_event(self, type_: str, **fields) -> Event:
        """`user`: the file's writer, where the caller knows it (agent.attribution.writer_of); the
        login session's user then goes beside it, marked, in details.session_user. Without one,
        the event's user is the login session's."""
        session_user = self.users.current()
        if type_ == "egress.file" and not fields.get("user") and "user_from" not in (fields.get("details") or {}):
            fields.update(self._writer_fields(fields))
        if type_ == "egress.file" and "app" not in (fields.get("details") or {}):
            fields.update(self._app_fields(fields))
        item = self._central_items.get(fields.get("register_entry"))
        if item is not None:  # the central register's item: its id and owner beside its name
            fields["details"] = {**(fields.get("details") or {}), "register_item_id": item.item_id, "register_owner": item.owner}
        if fields.get("user"):
            fields["details"] = {**(fields.get("details") or {}), "session_user": session_user}
        else:
            fields["user"] = session_user
        # the reporter's id: the collector may have given us a new one at enrolment
        return Event.made(type=type_, agent_id=self.reporter.agent_id, host=self.host, **fields)

    def _writer_fields(self, fields: dict) -> dict:
        """The writer of an egress file as far as known without its fstat (the kernel's word, a
        process caught writing); {} when unknown. The pipeline passes `user` itself where it has
        the file's fstat (agent.attribution.WriterTracker.writer_of), and this is not asked."""
        raw = os.fsdecode(base64.b64decode(fields["path_b64"])) if fields.get("path_b64") else fields.get("path")
        if not raw:
            return {}
        user, how = self.pipeline.writers.writer_of(raw, None)
        if not user:
            return {}
        return {"user": user, "details": {**(fields.get("details") or {}), "user_from": how}}

    def _app_fields(self, fields: dict) -> dict:
        """The app keeping the egress place the file is in (WeChat, Dropbox), as details.app."""
        raw = os.fsdecode(base64.b64decode(fields["path_b64"])) if fields.get("path_b64") else fields.get("path")
        place = (self.places.find(raw) or (self.user_mounts and self.user_mounts.places.find(raw))) if raw else None
        if place is None or not place.app:
            return {}
        return {"details": {**(fields.get("details") or {}), "app": place.app}}

    def stamped_event(self, type_: str, **fields) -> Event:
        """An event stamped by the rules in force, for events spooled outside the pipeline."""
        return self.rules.stamp(self.make_event(type_, **fields))

    def _emit(self, type_: str, **fields) -> None:
        """Spool an event from a thread of the agent's own (the spool is safe across threads)."""
        self.spool.put([self.stamped_event(type_, **fields)])

    def _restart(self, why: str) -> None:
        self.stop_reason = f"restart: {why}"
        if self._on_restart is not None:
            self._on_restart(why)

    def status_fields(self) -> dict:
        return {
            # readable: a path that is not UTF-8 would make the collector refuse the heartbeat
            "watched": [readable(p.root)[0] for p in self.places.all()] + [readable(f.path)[0] for f in self.index.folders],
            "dead_events": self.spool.dead_count(),
            "indexed_files": self.index.count(),  # the collector's fleet page shows it
            # per register item in force here (agent/central.py): the fleet and register pages show them
            "indexed_by_item": indexed_by_item(self.central.current, self.index.count_under),
            "pipeline": self.pipeline.progress(),  # the collector alerts when it stalls (server/stall.py)
        }

    def start(self) -> None:
        """Watch first (changes queue up), bring the index up to date, then process."""
        raise_inotify_limits()
        self.reporter.start()
        self.watchers.start()
        for folder in self.config.egress.folders:
            self.places.add(EgressPlace(folder, self.config.egress.kind_of(folder), app=self.config.egress.app_of(folder)))
        self.central.refresh()  # the register's folders join the index's before it is refreshed
        roots = [f.path for f in self.config.classified] + list(self.config.egress.folders)
        for root in sorted(roots, key=len):  # outer folders first: a nested one is part of its watch
            self.watchers.watch(root)
        stats = self.index.refresh()
        for problem in stats.unwalkable[:MAX_BLIND_REPORTS]:  # a classified subtree it cannot walk
            self._emit("agent.error", **blind_fields(os.fsdecode(problem.path), problem.reason, "walk"))
        release_memory()
        logger.info(
            "index ready files={} hashed={} removed={} errors={}", stats.files, stats.hashed, stats.removed, stats.errors
        )
        details = {
            "version": __version__,
            "indexed_files": stats.files,
            "policy_source": self.rules.current.source,
            **self.previous_run.details(),  # previous_stop, unclean_stop, last_alive, rebooted
        }
        self.reads.start()  # before agent.started, which says once when reads cannot be watched
        if self.reads.unavailable_reason():
            details["reads_unwatched"] = self.reads.unavailable_reason()
        unclean = self.previous_run.unclean_text()  # quoted by the MW-AGENT-KILLED alert
        self.spool.put([self.stamped_event("agent.started", details=details, **({"error": unclean} if unclean else {}))])
        self.config_watch.start()
        self.notice.start()
        self.pipeline.start()
        for folder in self.config.egress.folders:
            self.pipeline.scan(folder)  # files written while the agent was not running
        for place in self.central.current.egress:
            self.pipeline.scan(place.root)
        self._central_live = True  # from here a change is indexed by the pipeline, not by the start's refresh
        self.central.start()
        self.media.start()
        if self.user_mounts is not None:
            self.user_mounts.start()
        if self.app_folders is not None:
            self.app_folders.start()  # the folders there now are watched and scanned before ready
        if self.printing is not None:
            self.printing.start()
        self.selfwatch.start()
        self.ready.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        logger.info("agent stopping reason={!r}", self.stop_reason)
        self.selfwatch.stop()
        self.central.stop(timeout_s)
        self.config_watch.stop(timeout_s)
        self.media.stop(timeout_s)
        if self.user_mounts is not None:
            self.user_mounts.stop(timeout_s)
        if self.app_folders is not None:
            self.app_folders.stop(timeout_s)
        self.reads.stop(timeout_s)
        if self.printing is not None:
            self.printing.stop(timeout_s)
        self.watchers.stop(timeout_s)
        self.pipeline.stop(timeout_s)
        self.notice.stop(timeout_s)
        stopped = self.stamped_event("agent.stopped", details={"clean": True, "reason": self.stop_reason})
        self.spool.put([stopped], state={CLEAN_STOP: stopped.ts})
        self.reporter.stop(timeout_s, drain_s=min(3.0, timeout_s))
        self.index.close()
        self.spool.close()

    def _apply_central(self, before: CentralSet, after: CentralSet) -> None:
        """Start and stop watching and indexing what the group policy changed (agent/central.py).

        The index's folder list is replaced whole (one reference assignment, read by the pipeline
        without a lock); a new or relabelled folder is queued to the pipeline as a created folder,
        so its files are indexed (and relabelled) on the pipeline's thread. Before the pipeline runs,
        the start watches and refreshes the index itself. A folder no longer in the register is unwatched and
        its rows leave the index (its content is no longer classified here).
        """
        local = {f.path: f for f in self.config.classified}
        merged = {**local, **{f.path: f for f in after.classified}}  # the register's item wins a shared path
        self.index.folders = tuple(sorted(merged.values(), key=lambda f: len(f.path), reverse=True))
        self.reads.folders = self.index.folders  # marked at its next walk (reads started with none wait for a restart)
        self.media.excluded = tuple(f.path for f in self.index.folders) + (self.config.state_dir,)  # never egress
        self._central_items = {i.name: i for i in after.items}
        started = self._central_live  # not `ready`: a policy may arrive after the start's refresh, before ready
        old = {f.path: f for f in before.classified}
        for folder in sorted(after.classified, key=lambda f: len(f.path)):
            if old.get(folder.path) != folder and self.watchers.watch(folder.path) and started:
                self.pipeline.changes.put(FsChange("created", folder.path, is_dir=True))
        dropped = old.keys() - {f.path for f in after.classified} - local.keys()
        for path in dropped:
            self.watchers.unwatch(path)
            if not self.index.folder_for(path):  # not inside another classified folder: its content is no longer classified
                self.index.remove_tree(path)
        if dropped:
            self.index.purge_history()  # forgets what is no longer under a classified folder
        listed = set(self.config.egress.folders)
        old_places = {p.root for p in before.egress}
        for place in after.egress:
            if place.root not in old_places and place.root not in listed:
                self.places.add(place)
                if self.watchers.watch(place.root) and started:
                    self.pipeline.scan(place.root)
        for root in old_places - {p.root for p in after.egress} - listed:
            self.watchers.unwatch(root)
            self.places.remove(root)

    def _on_group(self, group) -> None:
        """A group policy in force (the reporter's thread): its heartbeat setting now, its places on
        the central thread."""
        self.reporter.heartbeat_s = (group.heartbeat_s if group and group.heartbeat_s else None) or self.config.heartbeat_s
        self.notice.use_group(group.notify_severities if group else None)  # over notify_user.severities
        own = self.config.limits  # the group's caps over the config's `limits`, each one it sets
        cpu, memory, spool = ((group.limit(n) if group else None) for n in ("cpu_percent", "memory_mb", "spool_mb"))
        self.selfwatch.caps = dataclasses.replace(
            self.selfwatch.caps, cpu_percent=cpu or own.cpu_percent, memory_mb=int(memory or own.memory_mb)
        )
        self.spool.max_bytes = int(spool or own.spool_mb) * 1024 * 1024
        self.central.offer(group)

    def _central_problem(self, problem) -> None:
        """A register location that gave nothing here or was cut short: said once."""
        self._emit("agent.error", error=f"register location {problem.pattern!r}: {problem.problem}"[:1900],
                   details={"pattern": problem.pattern, "reason": problem.problem})  # fmt: skip

    def _on_app_folder(self, found: FoundFolder) -> None:
        """An IM or cloud-drive folder found in a home: an egress place of its kind, watched and
        scanned like a listed folder (raises when it cannot be watched; discovery tries again)."""
        if found.path in self.config.egress.folders:
            return  # listed in the config: its kind and app there stand
        self.places.add(EgressPlace(found.path, found.kind, app=found.app))
        if not self.watchers.watch(found.path):
            self.places.remove(found.path)
            raise OSError(f"cannot watch {found.path!r}")
        self.pipeline.scan(found.path)

    def _on_app_folder_gone(self, found: FoundFolder) -> None:
        if found.path in self.config.egress.folders:
            return
        self.watchers.unwatch(found.path)
        self.places.remove(found.path)

    def _on_app_folder_refused(self, refused: Refused) -> None:
        """An app folder not watched (a link, or overlapping a classified folder): said once."""
        path, path_b64 = readable(refused.path)
        details = {"app": refused.app, "reason": refused.reason}
        self._emit("agent.error", path=path, path_b64=path_b64, error=refused.why, details=details)

    def _on_mount(self, mount: Mount) -> None:
        """Raises when the mount could not be taken in; the media monitor tries again."""
        self.places.add(EgressPlace(mount.mountpoint, "removable", mount.media))
        path, path_b64 = readable(mount.mountpoint)
        event = self.stamped_event("media.mounted", path=path, path_b64=path_b64, media=mount.media, egress="removable")
        self.spool.put([event])
        self.pipeline.writers.watch(mount.mountpoint)  # before the scan: writes from now on have a writer
        if self.watchers.watch(mount.mountpoint):
            self.pipeline.scan(mount.mountpoint)

    def _on_user_mount(self, place: EgressPlace, mounted: bool) -> None:
        """A phone or share mounted in user space came or went: said as removable media are."""
        if not mounted:
            self.spool.forget_reported(place.root)
        path, path_b64 = readable(place.root)
        kind = "media.mounted" if mounted else "media.unmounted"
        details = {"app": place.app} if place.app else {}
        self._emit(kind, path=path, path_b64=path_b64, media=place.media, egress=place.kind, details=details)

    def _on_unmount(self, mount: Mount) -> None:
        self.watchers.unwatch(mount.mountpoint)
        self.places.remove(mount.mountpoint)
        self.spool.forget_reported(mount.mountpoint)
        path, path_b64 = readable(mount.mountpoint)
        self.spool.put(
            [self.stamped_event("media.unmounted", path=path, path_b64=path_b64, media=mount.media, egress="removable")]
        )


def read_status(config: AgentConfig) -> dict:
    """What `miwei-agent status` prints: read from state_dir, works while the agent runs."""
    index = FingerprintIndex(config.index_path, config.classified)
    try:
        return {
            "agent_id": load_or_make_agent_id(config.state_dir) if os.path.exists(os.path.join(config.state_dir, "agent_id")) else None,
            "enrolled": os.path.exists(os.path.join(config.state_dir, "token")),
            "server_url": config.server_url,
            **_spool_status(config.spool_path),
            "indexed_files": index.count(),
            **_policy_status(config),
            "classified": [{"path": f.path, "level": f.level, "name": f.name} for f in config.classified],
            "egress_folders": list(config.egress.folders),  # listed; the found app folders are in the heartbeat's watched
            "mount_roots": list(config.egress.mount_roots) if config.egress.removable else [],
        }
    finally:
        index.close()


def _spool_status(path: str) -> dict:
    """The spool as it is, read-only: the running agent's, or one a crash left torn or damaged,
    which the agent checks when it starts (a read-write connection closed here would checkpoint
    a torn log and delete it, and with it the evidence). A missing spool is not created."""
    status: dict = {"spool_depth": 0, "dead_events": 0, "last_delivery": None, "spool_exists": os.path.exists(path)}
    if not status["spool_exists"]:
        return status
    try:
        spool = Spool(path, recover=False)
    except sqlite3.Error as exc:
        return {**status, "spool_error": str(exc)}
    try:
        last = spool.get_state("last_delivery")
        return {**status, "spool_depth": spool.depth(), "dead_events": spool.dead_count(), "last_delivery": json.loads(last) if last else None}
    except sqlite3.Error as exc:  # damaged: the agent moves it aside when it starts
        return {**status, "spool_error": str(exc)}
    finally:
        spool.close()


def _policy_status(config: AgentConfig) -> dict:
    """The rules the agent starts with (and runs with: it caches every policy it puts in force)."""
    try:
        active = PolicyStore(config.state_dir, read_local_sources(config.rules)).load()
    except InvalidInput as exc:
        return {"policy_version": None, "policy_source": None, "policy_error": str(exc), "extra_rule_files": []}
    group = active.group  # the group part it starts with: its register items and their patterns here
    return {
        "policy_version": active.version, "policy_source": active.source, "extra_rule_files": list(active.local_files),
        "group": group.group if group else None,
        "register_items": [{"id": i.item_id, "name": i.name, "level": i.level, "patterns": list(i.patterns)} for i in group.register] if group else [],
    }  # fmt: skip
