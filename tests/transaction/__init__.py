"""Tests of sipapp.transaction."""
