"""Automation: jobs, the monthly schedule and the sensors that close the loop."""
