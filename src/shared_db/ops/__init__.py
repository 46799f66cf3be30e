"""Operations that span the database: migrations, the embedded server, backups, reports."""
