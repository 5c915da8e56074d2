"""The gRPC server: servicers, authentication and the control-plane process."""
