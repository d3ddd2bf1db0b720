"""The model: its torch-free engine (engine/, shared with serving), and the offline rooms that
make a model directory from a corpus: train/ (torch), evaluate/, export/; data.py is the
corpus and its split."""
