"""Fine-tuning jobs: result models, metrics, flows and the Job / AsyncJob shells."""
