-- One database per ICN node (each node keeps its own store; replication goes through NATS).
-- Run once by the postgres image on an empty volume (docker-entrypoint-initdb.d).
CREATE DATABASE icn1 OWNER icn;
CREATE DATABASE icn2 OWNER icn;
CREATE DATABASE icn3 OWNER icn;
