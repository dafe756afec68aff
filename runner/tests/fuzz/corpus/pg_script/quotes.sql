DO $f$ begin perform $$;$$; end $f$;
SELECT (1;2) /* /* ; */ */, "a""b;", a$b$c, $1;
SELECT U&'d\0061t;a' -- ;
;
