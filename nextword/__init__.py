"""The `nextword` command (cli.py): one subcommand per step of the flow in docs/DESIGN.md."""
