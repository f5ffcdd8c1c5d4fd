DROP TABLE score_windows;
