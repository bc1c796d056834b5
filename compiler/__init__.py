"""hacc compiler: one site YAML -> validated per-node keepalived configs and notify scripts."""
