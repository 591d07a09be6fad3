<#
.SYNOPSIS
    Install the MiWei agent on Windows from the offline wheelhouse, as a service. UNTESTED: written
    and reviewed on Linux; no Windows machine ran it (see docs/deploy.md, "Windows, offline").

.DESCRIPTION
    1. A Python of MiWei's own under "C:\Program Files\MiWei\Python", installed for all users from
       the python.org installer you copy beside this script (no network). Not a venv: pywin32's
       service host cannot load a venv's packages, and `miwei-agent install-service` refuses one
       (agent/service/windows.py; pywin32 issues #1450, #1463).
    2. MiWei and its dependencies from dist\wheelhouse\win_amd64 (pip --no-index), then pywin32's
       post-install step (its DLLs for the service host).
    3. The state folder (C:\ProgramData\MiWei by default) and the Python folder readable and
       writable by SYSTEM and Administrators only: inheritance removed, every other entry dropped.
    4. The service through the agent's own code: `miwei-agent install-service --config ...`
       (service MiWeiAgent, automatic start, LocalSystem, restart on failure).

    Run from an elevated PowerShell:
      .\install.ps1 -PythonInstaller .\python-3.11.9-amd64.exe -Wheelhouse ..\..\dist\wheelhouse\win_amd64 `
                    -Config C:\ProgramData\MiWei\agent.yaml
    The config must exist (state_dir inside -StateDir) and should carry enroll_secret_file:.
    Wheels listed in the wheelhouse's MISSING.txt have no Windows build on the index: build them
    on a Windows machine and add them to the folder first.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string]$PythonInstaller,
    [Parameter(Mandatory = $true)][string]$Wheelhouse,
    [Parameter(Mandatory = $true)][string]$Config,
    [string]$InstallDir = "$env:ProgramFiles\MiWei",
    [string]$StateDir = "$env:ProgramData\MiWei"
)
$ErrorActionPreference = "Stop"

function Assert-Administrator {
    $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw "run this script from an elevated PowerShell (Run as administrator)"
    }
}

function Set-PrivateAcl([string]$Path, [string]$Rights) {
    # SYSTEM and Administrators only (by SID: the names are translated on non-English Windows)
    $acl = New-Object Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)  # no inherited entries, none kept
    foreach ($sid in @("S-1-5-18", "S-1-5-32-544")) {
        $who = New-Object Security.Principal.SecurityIdentifier($sid)
        $rule = New-Object Security.AccessControl.FileSystemAccessRule(
            $who, $Rights, "ContainerInherit,ObjectInherit", "None", "Allow")
        $acl.AddAccessRule($rule)
    }
    $acl.SetOwner((New-Object Security.Principal.SecurityIdentifier("S-1-5-32-544")))
    Set-Acl -LiteralPath $Path -AclObject $acl
}

Assert-Administrator
foreach ($needed in @($PythonInstaller, $Wheelhouse, $Config)) {
    if (-not (Test-Path -LiteralPath $needed)) { throw "not found: $needed" }
}
$python = Join-Path $InstallDir "Python\python.exe"

if (-not (Test-Path -LiteralPath $python)) {
    Write-Host "installing Python into $InstallDir\Python (all users, no PATH change, no launcher)"
    $arguments = @("/quiet", "InstallAllUsers=1", "TargetDir=`"$InstallDir\Python`"", "PrependPath=0",
                   "Include_launcher=0", "Include_test=0", "Shortcuts=0", "AssociateFiles=0")
    $process = Start-Process -FilePath $PythonInstaller -ArgumentList $arguments -Wait -PassThru
    if ($process.ExitCode -ne 0) { throw "the Python installer failed with exit code $($process.ExitCode)" }
}
# Only SYSTEM and Administrators may change the Python the service runs as SYSTEM (everyone else
# could plant code there); users keep no access: nothing of theirs runs it.
Set-PrivateAcl -Path $InstallDir -Rights "FullControl"

Write-Host "installing MiWei from $Wheelhouse (no package index)"
$env:PIP_CONFIG_FILE = "NUL"  # an administrator's pip.ini (an index, a proxy) is ignored
& $python -m pip install --isolated --no-index --no-cache-dir --disable-pip-version-check `
    --find-links $Wheelhouse miwei pywin32
if ($LASTEXITCODE -ne 0) { throw "pip install failed (exit $LASTEXITCODE): is a wheel missing? see MISSING.txt" }
& $python -m pywin32_postinstall -install -silent
if ($LASTEXITCODE -ne 0) { throw "pywin32_postinstall failed (exit $LASTEXITCODE)" }

New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
Set-PrivateAcl -Path $StateDir -Rights "FullControl"

Write-Host "installing the service MiWeiAgent"
& $python -m agent.cli install-service --config $Config
if ($LASTEXITCODE -ne 0) { throw "miwei-agent install-service failed (exit $LASTEXITCODE): see its message above" }
Write-Host "done: Get-Service MiWeiAgent; the agent's log is in $StateDir\logs"
