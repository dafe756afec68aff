--
-- PostgreSQL database cluster dump
--

\restrict 3cyyrb06HS4yKpzQKYz4qXCWKsXDfRTiUL3LsOshF1jXB8MXzDlt8TaA4HVMFu5

SET default_transaction_read_only = off;
CREATE ROLE a;
ALTER ROLE a WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';
COMMENT ON ROLE a IS E'hi \\ there';
CREATE TABLESPACE t OWNER a LOCATION '/tmp/t';
GRANT a TO b GRANTED BY postgres;

\unrestrict 3cyyrb06HS4yKpzQKYz4qXCWKsXDfRTiUL3LsOshF1jXB8MXzDlt8TaA4HVMFu5

--
