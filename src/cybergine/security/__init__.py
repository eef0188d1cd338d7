"""Security monitoring (policy §12): signals counted where they happen, and a periodic
job that raises an alert (owners e-mailed, an audit entry) when one bursts."""
