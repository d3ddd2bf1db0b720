"""The server core: settings, wiring, workers, the gRPC protocol, predictions, users and their store."""
