"""The service's facts as data, read by the SDK and the local backend alike.

Per endpoint (OpenAI, Azure, other): the model catalogue, limits, default epochs, prices and
lifecycle dates, each table dated (``_models.py``); which endpoint a URL is
(``_endpoints.py``); encodings and the token formula (``_tokens.py``); what a job reports
(``_jobs.py``).
"""
