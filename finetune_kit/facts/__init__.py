"""The service's facts as data, read by the SDK and the local backend alike.

Model catalogue, limits, default epochs, prices (dated), lifecycle dates, encodings and the
token formula.
"""
