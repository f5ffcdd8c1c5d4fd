DROP TABLE payment_conflicts;
DROP TABLE payments;
DROP TABLE service_nodes;
