"""Online half of nextword: onnxruntime behind gRPC, with Prometheus metrics. No torch here."""
