"""Differentially private training: per-example clipping (our direct path and Opacus' grad
samplers), noise and accounting through Opacus. Imports torch and opacus."""
