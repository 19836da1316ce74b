"""Server-to-server trust (issue #13, part E): partner applications, the tenant's authorisation certificates
and the keys partners hold of ours on their service principals (seed 002)."""
