-- One `users` row per email, as Cognito has one user per email (the pool signs in by
-- email): a new Cognito identity of a known address (the user deleted and made again, or a
-- local emulator's restart) is relinked to the existing row by shared/src/users.rs, and
-- needs the email to find exactly one row.
--
-- Rows that already share an email are merged first: the newest row (created last, so it
-- holds the `sub` Cognito most recently made for the address) is kept, with the earliest
-- `created_at` of the group (the account is as old as its oldest data). The older rows'
-- memories and conversations move to it (messages follow their conversation), then the
-- older rows go. Deleting them instead would lose the person's data; keeping them would
-- leave it unreachable (no `sub` leads to them). Nothing else refers to users: the only
-- other unique constraint, memories.s3_key, is untouched (keys keep the prefix of the
-- row they were uploaded under; every reader finds a memory by its key or its user_id,
-- and account deletion deletes objects by the rows' keys, not by prefix). Plans are not
-- combined: the kept row's plan stays.
--
-- One DO block, so the whole merge is one statement (one transaction) however the file
-- is run (sqlx's migrator, or psql in scripts/sqlx-data.sh), and the table is locked
-- against writes for it: no duplicate can be made between the merge and the constraint.

DO $$
BEGIN
    LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;

    CREATE TEMPORARY TABLE users_merged AS
    SELECT id AS old_id, keeper_id
      FROM (SELECT id,
                   first_value(id) OVER (PARTITION BY email ORDER BY created_at DESC, id DESC) AS keeper_id
              FROM users) ranked
     WHERE id <> keeper_id;

    UPDATE memories m SET user_id = g.keeper_id
      FROM users_merged g WHERE m.user_id = g.old_id;

    UPDATE conversations c SET user_id = g.keeper_id
      FROM users_merged g WHERE c.user_id = g.old_id;

    UPDATE users k
       SET created_at = LEAST(k.created_at, oldest.created_at), updated_at = now()
      FROM (SELECT g.keeper_id, min(u.created_at) AS created_at
              FROM users_merged g JOIN users u ON u.id = g.old_id
             GROUP BY g.keeper_id) oldest
     WHERE k.id = oldest.keeper_id;

    DELETE FROM users u USING users_merged g WHERE u.id = g.old_id;

    DROP TABLE users_merged;

    ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
END
$$;
