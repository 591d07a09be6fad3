"""MiWei's shared detection vocabulary: event schema, levels, located YAML loading."""
