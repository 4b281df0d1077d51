"""Orchestration (docs/planning.md): treatment orders, manufacturing capacity and apheresis slots,
bookings, milestones planned from lead times against the custody record, and KPIs."""
