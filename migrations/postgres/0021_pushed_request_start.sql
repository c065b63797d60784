-- RFC 9126 §4 (issue 14): a pushed request must be started at /oauth/authorize within its
-- short lifetime; once started it stays usable through sign-in and consent until its code is
-- issued, however long they take within the consent form's hour. `started_at` marks the
-- start, so the longer lifetime is given once.
ALTER TABLE pushed_authorization_requests ADD COLUMN started_at BIGINT;
