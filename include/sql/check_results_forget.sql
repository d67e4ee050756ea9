-- Forget what an earlier execution of the same attempt of a run recorded: a re-run of
-- that attempt replaces its results instead of adding to them. Positional binds: run id,
-- try number. The results table is a placeholder filled with its validated, quoted name.
DELETE FROM {{ results }} WHERE run_id = %s AND try_number = %s
