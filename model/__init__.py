"""Offline half of nextword: corpus, tokenizer, LSTM training, evaluation, ONNX export."""
