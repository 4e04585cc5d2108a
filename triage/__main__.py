from triage.cli import app

app()
