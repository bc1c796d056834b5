"""`hacc sync`: GitOps on the node. Fetch a branch, fast-forward only, verify signatures, check the new
revision out into its own release directory, run the node's config test on it, wait for this node's
rollout slot, then flip an atomic `current` symlink that `hacc run DIR/current` reloads from.

Modules: git.py (git plumbing, every call with a timeout), order.py (the rollout file and a node's
slot: pure), releases.py (release directories and the symlink flip), state.py (the JSON state file),
sync.py (one sync pass and rollback), units.py (systemd service and timer), cli.py (the click command).
Never imports the compiler: its input is a git branch of generated trees.
"""
