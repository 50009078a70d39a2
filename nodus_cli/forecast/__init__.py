"""Forecasts with prediction intervals, threshold crossings and reports."""
