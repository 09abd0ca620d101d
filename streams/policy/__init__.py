"""Policy changes that reach scheduled messages: opt-outs, use cases, brands."""
