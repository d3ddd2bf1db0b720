"""Export: `nextword export`, checkpoint -> model directory (ONNX, int8, manifest, card)."""
