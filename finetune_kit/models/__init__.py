"""Tuned models: TunedModel / AsyncTunedModel."""
