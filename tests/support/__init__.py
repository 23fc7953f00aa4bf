"""Test equipment shared by unit, integration and deploy tests: each helper exists here once."""
