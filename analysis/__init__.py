"""Shared code of the robustness report."""
