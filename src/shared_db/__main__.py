from shared_db.cli import run

run()
