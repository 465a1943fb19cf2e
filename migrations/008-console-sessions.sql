-- Admin console sign-ins. The browser holds only a random session id (in a signed HttpOnly cookie);
-- the row keeps its SHA-256, so a database read cannot be replayed as a session. Sign-out deletes
-- the row: a copied cookie dies with it, on every instance.
create table console_sessions (
  id_hash text primary key,
  csrf text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index console_sessions_expires_idx on console_sessions (expires_at);
