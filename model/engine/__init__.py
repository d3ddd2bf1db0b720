"""The torch-free engine: tokens, the strip, typos, users' own words, the model directory and onnxruntime.

Serving, evaluation and export all use it; it imports neither torch nor gRPC."""
