-- Users sign in with a password (Authenticate); imported users may have none.
ALTER TABLE "users" ADD COLUMN "password_hash" TEXT;
