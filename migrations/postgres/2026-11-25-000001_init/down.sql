DROP TABLE job_leases;
DROP TABLE policy_versions;
DROP TABLE streams;
DROP TABLE anchors;
