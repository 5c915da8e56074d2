"""Services: the federation's logic over the store. No gRPC here (the server layer maps errors)."""
