"""Classification: labels, prompts, the technique ladder, runners and the Batch API."""
