-- Purpose: the groups export as one API list page (groups.json, in the JSONL layout).
-- One API list page (the groups export always fits in one page of at most 100).
SELECT json_object(
    'data', coalesce(to_json(list(json_object('id', group_id, 'name', name,
                                              'created_at', created_at) ORDER BY g)),
                     '[]'::JSON),
    'pagination', json_object('page', 1, 'page_size', 100, 'total_count', count(*),
                              'total_pages', 1))::VARCHAR AS line
FROM groups WHERE in_export;
