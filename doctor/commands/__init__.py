"""One module per command. Each takes its typed options (doctor/options.py) and the
Environment, and returns a CommandOutcome (doctor/outcome.py); none sees argparse,
decides an exit code or writes to the terminal except through doctor/render/."""
