"""Renderers: everything the user sees is drawn here, never in checks or fixes."""
