-- The functions' privileges, held by one group role: `encache_app` (NOLOGIN). The
-- functions log in as a login role that is a member of it, created and given its password
-- by the migration function (functions/migrate, `DB_APP_USER`), so no password is in a
-- migration. Only the master user (who runs the migrations) owns the tables, can change
-- the schema, or reads sqlx's migration history.
--
-- Least privilege, by what the code does (functions/*/src/store.rs, shared/src/users.rs):
-- users       read, insert, update (post-confirmation upsert), delete (account deletion;
--             memories, conversations and messages go with it by ON DELETE CASCADE, which
--             runs with the owner's rights)
-- memories    read, insert (upload), update (upload completion, expiry), delete (deletion)
-- conversations read, insert, update (last activity)
-- messages    read, insert
-- A new table grants what its functions need in its own migration; nothing is granted by
-- default (no ALTER DEFAULT PRIVILEGES), so a table no grant names is out of reach.

DO $$
BEGIN
    CREATE ROLE encache_app NOLOGIN;
EXCEPTION
    -- The role is cluster-wide: an earlier database on this server (or a parallel
    -- migration of another one) made it already.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO encache_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON users TO encache_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON memories TO encache_app;
GRANT SELECT, INSERT, UPDATE ON conversations TO encache_app;
GRANT SELECT, INSERT ON messages TO encache_app;
