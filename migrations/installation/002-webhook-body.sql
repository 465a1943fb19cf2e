-- The signed body of each delivery, as Wix sent it. The processor verifies it again before acting
-- on the row: a row written into the database by anything but a verified delivery is never acted on.
alter table wix_install.webhook_deliveries add column body text;
