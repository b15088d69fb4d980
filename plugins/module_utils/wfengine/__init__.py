"""Distributed engine for TOSCA declarative workflows."""
__version__ = "0.1.0"
