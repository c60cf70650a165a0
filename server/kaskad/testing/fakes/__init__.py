"""Fake provider servers on loopback that speak the providers' documented wire formats.

Each checks what a real provider would check (auth, signatures, request shape)
and answers as the real one does, so channel tests exercise real HTTP, not mocks.
"""
