"""The city's domain: pure Python, no Home Assistant imports."""
