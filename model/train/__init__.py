"""Training (torch): the `nextword train` command, the LSTM, the loop, checkpoints."""
