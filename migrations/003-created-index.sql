-- The admin list filters by creation time too; without this a created-at window scans the table.
create index workflows_created_idx on workflows (machine, created_at desc, id desc);
