"""What RQ and `rq cron` run: reminder sweeps, renewals, deadlines, charges and outbox recovery."""
