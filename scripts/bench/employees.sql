-- A database shaped like the "employees" sample the issue measured with (its six tables, their
-- column types, keys and row counts; ~166 MiB of dump at full size), generated on the server so
-- that nothing is downloaded. Values are deterministic (CRC32 of the row number), names are drawn
-- from pools of 1275 first and 1637 last names, each employee has ~9.5 salaries, ~1.5 titles and
-- ~1.1 departments. It compresses about 4.4:1 with zstd -3, where scripts/shop.sql's orders
-- compress about 15:1: here the compressor costs as much CPU as the dump.
--
-- Run in an empty database after setting the row counts:
--   SET @employees=300024, @dept_emp=331603, @titles=443308, @salaries=2844047;
-- The bench divides them by BENCH_DIV.

CREATE TABLE employees (
  emp_no INT NOT NULL PRIMARY KEY,
  birth_date DATE NOT NULL,
  first_name VARCHAR(14) NOT NULL,
  last_name VARCHAR(16) NOT NULL,
  gender ENUM('M', 'F') NOT NULL,
  hire_date DATE NOT NULL
) ENGINE=InnoDB;

CREATE TABLE departments (
  dept_no CHAR(4) NOT NULL PRIMARY KEY,
  dept_name VARCHAR(40) NOT NULL UNIQUE KEY
) ENGINE=InnoDB;

-- The four tables of an employee's history: each row belongs to one employee (and department).
CREATE TABLE dept_manager (
  emp_no INT NOT NULL,
  dept_no CHAR(4) NOT NULL,
  from_date DATE NOT NULL,
  to_date DATE NOT NULL,
  PRIMARY KEY (emp_no, dept_no),
  FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE,
  FOREIGN KEY (dept_no) REFERENCES departments (dept_no) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE dept_emp LIKE dept_manager;
ALTER TABLE dept_emp
  ADD FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE,
  ADD FOREIGN KEY (dept_no) REFERENCES departments (dept_no) ON DELETE CASCADE;

CREATE TABLE titles (
  emp_no INT NOT NULL,
  title VARCHAR(50) NOT NULL,
  from_date DATE NOT NULL,
  to_date DATE,
  PRIMARY KEY (emp_no, title, from_date),
  FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE salaries (
  emp_no INT NOT NULL,
  salary INT NOT NULL,
  from_date DATE NOT NULL,
  to_date DATE NOT NULL,
  PRIMARY KEY (emp_no, from_date),
  FOREIGN KEY (emp_no) REFERENCES employees (emp_no) ON DELETE CASCADE
) ENGINE=InnoDB;

INSERT INTO departments VALUES
  ('d001', 'Marketing'), ('d002', 'Finance'), ('d003', 'Human Resources'),
  ('d004', 'Production'), ('d005', 'Development'), ('d006', 'Quality Management'),
  ('d007', 'Sales'), ('d008', 'Research'), ('d009', 'Customer Service');

-- Name pools: a capital letter, then letters picked by hash (vowels and common consonants twice
-- as likely), 3 to 14 (first) or 3 to 16 (last) characters in all.
SET @letters = 'abcdefghijklmnopqrstuvwxyzaeiouaeioulnrst';
CREATE TEMPORARY TABLE first_names (i INT PRIMARY KEY, name VARCHAR(14));
CREATE TEMPORARY TABLE last_names (i INT PRIMARY KEY, name VARCHAR(16));
INSERT INTO first_names
SELECT s.seq - 1,
       CONCAT(UPPER(SUBSTR(@letters, 1 + CRC32(CONCAT('F', s.seq)) % 26, 1)),
              SUBSTR(GROUP_CONCAT(SUBSTR(@letters, 1 + CRC32(CONCAT('F', s.seq, '.', c.seq)) % 41, 1)
                                  ORDER BY c.seq SEPARATOR ''),
                     1, 2 + CRC32(CONCAT('FL', s.seq)) % 12))
FROM seq_1_to_1275 s JOIN seq_1_to_15 c GROUP BY s.seq;
INSERT INTO last_names
SELECT s.seq - 1,
       CONCAT(UPPER(SUBSTR(@letters, 1 + CRC32(CONCAT('L', s.seq)) % 26, 1)),
              SUBSTR(GROUP_CONCAT(SUBSTR(@letters, 1 + CRC32(CONCAT('L', s.seq, '.', c.seq)) % 41, 1)
                                  ORDER BY c.seq SEPARATOR ''),
                     1, 2 + CRC32(CONCAT('LL', s.seq)) % 14))
FROM seq_1_to_1637 s JOIN seq_1_to_15 c GROUP BY s.seq;

INSERT INTO employees
SELECT 10000 + s.seq,
       '1952-02-01' + INTERVAL CRC32(CONCAT('b', s.seq)) % 4700 DAY,
       f.name, l.name,
       IF(CRC32(CONCAT('g', s.seq)) % 5 < 3, 'M', 'F'),
       '1985-01-01' + INTERVAL CRC32(CONCAT('h', s.seq)) % 5100 DAY
FROM seq_1_to_300024 s
JOIN first_names f ON f.i = CRC32(CONCAT('f', s.seq)) % 1275
JOIN last_names l ON l.i = CRC32(CONCAT('l', s.seq)) % 1637
WHERE s.seq <= @employees;

-- Row r (from 1) of a history table of M rows belongs to employee e = (r-1)*N div M + 1, and is
-- that employee's row number k (from 0): the rows of one employee are consecutive.
INSERT INTO dept_manager
SELECT e.emp_no, CONCAT('d00', 1 + (s.seq - 1) % 9), e.hire_date + INTERVAL 2 YEAR,
       IF(s.seq > 15, '9999-01-01', e.hire_date + INTERVAL 7 YEAR)
FROM seq_1_to_24 s JOIN employees e ON e.emp_no = 10000 + 1 + (s.seq - 1) * @employees DIV 24;

INSERT INTO dept_emp
SELECT e.emp_no, CONCAT('d00', 1 + (h.e + h.k) % 9), e.hire_date + INTERVAL h.k * 700 DAY,
       IF(h.k = 0 AND CRC32(CONCAT('d', h.e)) % 10 < 8, '9999-01-01',
          e.hire_date + INTERVAL h.k * 700 + 699 DAY)
FROM (SELECT e, seq - 1 - ((e - 1) * @dept_emp + @employees - 1) DIV @employees AS k
      FROM (SELECT seq, (seq - 1) * @employees DIV @dept_emp + 1 AS e
            FROM seq_1_to_331603 WHERE seq <= @dept_emp) r) h
JOIN employees e ON e.emp_no = 10000 + h.e;

INSERT INTO titles
SELECT e.emp_no,
       ELT(1 + CRC32(CONCAT('t', h.e, '.', h.k)) % 7, 'Senior Engineer', 'Staff', 'Engineer',
           'Senior Staff', 'Assistant Engineer', 'Technique Leader', 'Manager'),
       e.hire_date + INTERVAL h.k * 6 YEAR,
       IF(h.k = 1 OR CRC32(CONCAT('tt', h.e)) % 3 = 0, '9999-01-01',
          e.hire_date + INTERVAL h.k * 6 + 6 YEAR)
FROM (SELECT e, seq - 1 - ((e - 1) * @titles + @employees - 1) DIV @employees AS k
      FROM (SELECT seq, (seq - 1) * @employees DIV @titles + 1 AS e
            FROM seq_1_to_443308 WHERE seq <= @titles) r) h
JOIN employees e ON e.emp_no = 10000 + h.e;

INSERT INTO salaries
SELECT e.emp_no, 38000 + CRC32(CONCAT('s', h.e)) % 60000 + h.k * (CRC32(CONCAT('r', h.e, '.', h.k)) % 3000),
       e.hire_date + INTERVAL h.k YEAR, e.hire_date + INTERVAL h.k + 1 YEAR
FROM (SELECT e, seq - 1 - ((e - 1) * @salaries + @employees - 1) DIV @employees AS k
      FROM (SELECT seq, (seq - 1) * @employees DIV @salaries + 1 AS e
            FROM seq_1_to_2844047 WHERE seq <= @salaries) r) h
JOIN employees e ON e.emp_no = 10000 + h.e;

DROP TEMPORARY TABLE first_names, last_names;
