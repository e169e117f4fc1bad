-- Purpose: the number of rows in the groups export (the API list page's row count).
SELECT count(*) FROM groups WHERE in_export;
